from tftrt_yolo.cli import run

run()
