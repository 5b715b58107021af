"""The autoencoders (MLP, convolutional) and on-device augmentation."""
