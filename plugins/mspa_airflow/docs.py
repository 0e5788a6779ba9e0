"""A DAG's documentation from the markdown file beside it: the whole file is the DAG's doc
(after the module docstring), and the text under each ``#### `group.task``` heading is that
task's doc, shown in the UI's task view. One text for both, so they cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

_TASK_HEADING = re.compile(r"^#### `([\w.]+)`.*$", re.M)


class MissingTaskDoc(KeyError):
    """A task whose doc the markdown file does not hold."""


class DagDocs:
    """The docs of the DAG defined in ``dag_file`` (``<dag>.md`` beside it)."""

    def __init__(self, dag_file: str, intro: str | None) -> None:
        path = Path(dag_file).with_suffix(".md")
        self.markdown = path.read_text()
        self.dag = f"{(intro or '').strip()}\n\n{self.markdown}"
        heads = list(_TASK_HEADING.finditer(self.markdown))
        self._tasks = {}
        for head, nxt in zip(heads, [*heads[1:], None], strict=True):
            body = self.markdown[head.end():nxt.start() if nxt else None]
            self._tasks[head.group(1)] = body.split("\n## ")[0].strip()
        self._path = path

    def task(self, task_id: str) -> str:
        """The doc of ``group.task``; :class:`MissingTaskDoc` when the file has none."""
        try:
            return self._tasks[task_id]
        except KeyError:
            raise MissingTaskDoc(f"{self._path.name} has no section #### `{task_id}`") from None

    @property
    def task_ids(self) -> list[str]:
        return list(self._tasks)
