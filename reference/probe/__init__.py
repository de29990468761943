"""Looking inside a model: predictions, filters, feature maps, activation maximization, dream.

- `reference.probe.load`: models and weights, preprocessing and its inverse, images
- `reference.probe.layers`: layer names both ways, hooks that capture outputs
- `reference.probe.probes`: predictions, filters, feature maps, image gradients (data)
- `reference.probe.optimize`: activation maximization and deep dream (settings, presets)
- `reference.probe.plots`: figures from the data
- `reference.probe.cli`: `scratch probe`
"""
