"""Reference side of scratch: torch.nn / torchvision models, data, training, probes and plots."""
