"""The LLM runtime shared by every stage that asks a model: the backends (a causal LM on CPU
or GPU, the vision backend, the keyword rules, an OpenAI-compatible server) and the one
factory that picks one (:mod:`.engine`), the versioned prompts and how a user's history and an
author's content are rendered into them (:mod:`.prompting`), and the author content they read
from the warehouse (:mod:`.content`). The composer writes texts with it; the recommender's
examples and its evaluation use the same rendering and the same backends."""
