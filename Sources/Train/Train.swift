// Train
