"""Answers: what the host says to a viewer's question.

`KnowledgeBase` holds the union's FAQ and finds the entry for a question; `Answerer` streams an
answer sentence by sentence from that entry, or from the optional local LLM (`llm`) grounded on
it, or the fallback line when nothing fits.
"""
