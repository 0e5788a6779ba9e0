"""MSPA's Multimodal Preference Composer: preference texts per user, feature texts per author.

* :mod:`.prompting` — versioned prompts, fenced untrusted content, fair context budgets;
* :mod:`.backends` — batched generation behind one interface (text LLM, vision-language);
* :mod:`.validate` — output checks (sections, length, language, grounding);
* :mod:`.run` — sharded, cached, incremental daily runs and their published outputs.
"""
