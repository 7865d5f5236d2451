"""Resources: each external system behind one interface, with a local implementation (the embedded profile)."""
