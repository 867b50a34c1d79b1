"""`bms-gateway replay`: a measurement log through the live gateway's BMS step, faster than real time."""
