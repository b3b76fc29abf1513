"""dlgrade serve: the course loop (service layer beside batch/)."""
