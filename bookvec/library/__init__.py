"""The library behind `import bookvec`: a model (bundle + ONNX runtime) and an index (store +
model). The CLI and the HTTP service are shells over it. Never imports typer or rich."""
