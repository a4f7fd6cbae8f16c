"""Face perception: detection, landmarks, tracking, masks."""
