"""Components on a Docker engine: networks, a registry, load-balanced container tiers."""
