import sys

from mspa_tasks.cli import main

sys.exit(main())
