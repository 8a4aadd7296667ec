-- Version 2: disabled users (aero2 users disable). A disabled user cannot
-- sign in; only the admin commands write the flag (UpdateUser keeps it).
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
