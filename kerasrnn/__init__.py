"""kerasrnn: character-level recurrent language models with Keras 3, from training to the edge."""
__version__ = "0.1.0"
