"""The built-in pack simulator: equivalent-circuit packs that speak a CAN mapping like real packs.

`simulator.run_simulation` plays the configured packs on python-can buses (the demo, the
`bms-gateway simulate` command, the end-to-end tests); the physics lives in `pack_model`, the load in
`load_profile`, the injected faults in `faults` (physics) and `frame_faults` / `garbage` (frames). A pack whose
protocol has J1939 addressing is also a J1939 node: `j1939_node` (address claim, DM1, requests) with `j1939_pacer`
(BAM), `j1939_requests` (RTS/CTS, NACK), `j1939_faults` (dtc, readdress) and `j1939_bus` (what it receives).
"""
