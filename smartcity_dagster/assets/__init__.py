"""Software-defined assets, one module per step of the flow: raw → catalog → processed → gold → warehouse."""
