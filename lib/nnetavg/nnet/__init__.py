"""Neural-network components and the network that holds them in one flat parameter buffer."""
