"""A demo connector: simulated building data over the real BEMCom MQTT protocol."""
