"""Hand tracking: TFLite runtime wrapper, palm detector, landmark model, tracker, filters."""
