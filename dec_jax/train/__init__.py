"""Training over stacked state (a leading member axis): optimizers, minibatch plans, the pretraining epoch, the DEC / IDEC loop and its losses."""
