"""The on-device agent: ``edgekit agent --bundle PATH --device-id ID --broker URL``.

One module per concern: ``config`` (TOML + flags), ``select`` (which artifact), ``model`` (loading under the
memory cap), ``tasks`` (tensors and text embedding), ``batching`` (dynamic batches off the network thread),
``memory`` (admission, watchdog, cgroup), ``spool`` (durable store-and-forward), ``forwarder`` (spool -> broker),
``mqtt_client`` (paho), ``intake`` (requests and replies), ``payloads`` (topics and schemas), ``telemetry`` and
``service`` (wiring and the main loop).
"""
