"""The operator's console: one ASGI application for the browser pages, `/metrics` and `/healthz`.

Operators watch the channel, load schedules, review and answer questions, take over the air
and keep the knowledge base; supervisors see the same pages read-only. It binds to loopback
by default and is served by uvicorn inside the channel's own event loop.
"""
