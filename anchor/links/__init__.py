"""Links to the broker: the MQTT client, its outbox, and the payloads on the wire.

`payloads` is the one module that knows the MQTT payload shapes: it parses questions and
control commands coming in and encodes events and answers going out. `MqttLink` connects,
reconnects and acknowledges a question only after it is stored; `Outbox` publishes without
making anyone wait on the network.
"""
