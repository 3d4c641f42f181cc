"""Figure 3, the model amalgamation: one shared convolutional bottom, four learned
representations (high- and low-dimensional latents, pre-activation logits, independent
attribute probabilities), the downstream tasks that reuse them, and a serving pipeline of
versioned components."""
