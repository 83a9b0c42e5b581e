"""TensorFlow graph pieces of the end-to-end model: pre-processing, NMS, post-processing."""
