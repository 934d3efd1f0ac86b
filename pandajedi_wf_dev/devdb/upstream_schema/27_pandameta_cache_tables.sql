-- Upstream PanDA "meta" tables (schemaMETA = DOMA_PANDAMETA) that upstream's server writes when users upload sandboxes.
-- Written for pandajedi_wf (not upstream's schema): no Spec class; columns from the upstream SQL on userCacheUsage in
-- pandaserver/taskbuffer/db_proxy_mods/misc_standalone_module.py (insertSandboxFileInfo, checkSandboxFile,
-- getLockSandboxFiles) and pandaserver/daemons/scripts/copyArchive.py (cache clean-up).
SET search_path = doma_pandameta;

-- one row per user sandbox in a server's cache directory: file_server upload_cache_file registers it
-- (register_cache_file), validate_cache_file finds a sandbox to reuse by (userName, fileSize, checkSum)
CREATE TABLE usercacheusage (
    username varchar(128) NOT NULL,
    hostname varchar(64) NOT NULL,
    filename varchar(256) NOT NULL,
    filesize bigint,
    checksum varchar(36),
    creationtime timestamp NOT NULL,
    modificationtime timestamp,
    PRIMARY KEY (hostname, filename)
);
CREATE INDEX usercacheusage_user_idx ON usercacheusage (username, filesize, checksum);
CREATE INDEX usercacheusage_mtime_idx ON usercacheusage (modificationtime);
