"""Training: config, the model and its step, the loop, warm start and ONNX export.

The only package of bookvec that imports torch (an import-linter contract); its modules import
torch themselves, so `import bookvec.model.training.config` stays torch-free.
"""
