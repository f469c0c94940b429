"""Cloud controller: the EC2 Query API, images, instances, key pairs, tags, zones."""
