"""Viewer questions, from arrival to the desk.

`Reception` takes a question from any carrier (MQTT, console, command line), rate-limits,
moderates, stores it before it is acknowledged and hands it to the `QuestionDesk`, which queues,
merges near-duplicates and expires questions that waited too long.
"""
