"""Shared configuration, service start-up and the command line of ScoreStream."""
