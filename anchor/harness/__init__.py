"""Real peers for tests, the soak and benchmarks: never imported by the engine.

`mosquitto` starts a broker with a given configuration and publishes with the real
``mosquitto_pub`` client; `obs_studio` starts OBS Studio under Xvfb and speaks obs-websocket to
it; `standins` are loopback servers that speak an LLM's and a TTS server's real HTTP protocols,
with faults on demand; `tts_servers` are quicker TTS servers (Edge's read-aloud websocket and
plain HTTP) that answer with a test tone and can fail or stall when told to.
"""
