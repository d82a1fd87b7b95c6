"""People in video: detection, tracking and Re-ID crops from fixed cameras (``posedive pairs``), and
``inputs``: images, folders and video tracks read as ``schema.ImageGroup``s (``posedive fit``)."""
