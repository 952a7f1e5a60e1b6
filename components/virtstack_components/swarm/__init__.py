"""Components on a Docker Swarm: overlay networks, a registry service, tiers as services."""
