"""Real peers for tests, the soak and benchmarks: never imported by the engine.

`mosquitto` starts a broker with a given configuration (or the shipped deploy/mosquitto one
with generated users) and publishes with the real ``mosquitto_pub`` client; `certificates`
makes a throw-away CA and broker certificate with openssl; `obs_studio` starts OBS Studio
under Xvfb and speaks obs-websocket to it; `standins` are loopback servers that speak an LLM's
and a TTS server's real HTTP protocols, with faults on demand; `tts_servers` are quicker TTS
servers (Edge's read-aloud websocket and plain HTTP) that answer with a test tone and can fail
or stall when told to; `moderation_sets` reads the moderation evaluation sets and scores a
moderator on them.
"""
