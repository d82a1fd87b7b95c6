"""People in video: detection, tracking and Re-ID crops from fixed cameras (``posedive pairs``)."""
