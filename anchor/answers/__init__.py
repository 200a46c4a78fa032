"""Answers: what the host says to a viewer's question.

`KnowledgeBase` holds the union's FAQ and its lexical lens; `retrieval` finds the entry for a
question with sentence embeddings (`embedding`, vectors kept by `vectorcache`) plus that lens,
scored on one calibrated scale, through the one `RetrieverFactory`; `live` swaps in an edited
file on air. `Answerer` streams an answer sentence by sentence from the entry, or from the
optional local LLM (`llm`) grounded on it and checked sentence by sentence (`grounding`), or
the fallback line when nothing fits. `evaluation` is `anchor kb eval` / `anchor kb check`.
"""
