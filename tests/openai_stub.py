"""The OpenAI-protocol stand-in lives in the package (the soak uses it too)."""

from anchor.harness.standins import OpenAiStub, Reply, Request

__all__ = ["OpenAiStub", "Reply", "Request"]
