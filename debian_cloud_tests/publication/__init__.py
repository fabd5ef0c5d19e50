"""Publication on a cloud, in three steps that each stand alone and resume: register the image
privately, test the registered copies there, release them on a publish verdict (else remove them)."""
