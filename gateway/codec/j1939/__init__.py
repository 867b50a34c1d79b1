"""SAE J1939 as pure functions over identifiers and bytes: identifier, transport protocol (J1939-21), DM1
(J1939-73), address claim (J1939-81) and Request. Time is always the caller's `now` in seconds."""
