# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_engage_sync_global_optspecs
    string join \n db= config= json v/verbose q/quiet log-format= log-filter= default-country= h/help V/version
end

function __fish_engage_sync_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_engage_sync_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_engage_sync_using_subcommand
    set -l cmd (__fish_engage_sync_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c engage-sync -n "__fish_engage_sync_needs_command" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_needs_command" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_needs_command" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_needs_command" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_needs_command" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_needs_command" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "init" -d 'Create the replica and its till store, or migrate them to this version\'s schema'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "delta" -d 'Import Engage contact-export XML files into the replica'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "full" -d 'Build a complete replica (from a full export or the API) and swap it in atomically'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "changes" -d 'Pull contact changes from Engage\'s API since the stored cursor and apply them'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "lookup" -d 'Find a contact in the replica by one key and print the key to tag a purchase with'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "status" -d 'Show replica freshness, counts, recent runs, failures, quarantined files, gaps, the outboxes (depth per kind and state, the oldest undelivered item, rejected items with Engage\'s reason) and a `full` build in progress or left behind (age, size)'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "purge" -d 'Delete local personal data older than an age (GDPR)'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "contact" -d 'Register or change a contact at the till, queued for push-local'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "receipt" -d 'Buffer finalized purchases (Engage receipt JSON) for push-local'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "push-local" -d 'Push queued contacts (bulk write), then buffered receipts, to Engage'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "publish" -d 'On a hub: write the replica\'s changes as export files that stores import with `delta`'
complete -c engage-sync -n "__fish_engage_sync_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l mode -d 'What the replica keeps of a contact: `keys` (contactId, contactType and lookup keys only) or `full` (every field) [default: `mode` in the config file, else full]' -r -f -a "keys\t'contactId, contactType and the lookup keys only: enough to tag a purchase'
full\t'Whole contact objects, every field in `attributes`'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l dry-run -d 'Run the real logic and report per item what would happen, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l wait -d 'Wait for another engage-sync run to release the lock instead of exiting with 75'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand init" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l archive -d 'Move applied (and already-applied) files to this folder [default: `archive` in the config file, else files stay where they are]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l quarantine -d 'Move malformed files to this folder [default: `quarantine` in the config file, else `quarantine` beside the database]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l min-age -d 'Leave files found in a folder that changed less than this long ago for a later run (still being written, perhaps), e.g. 30s; 0 takes every file [default: `inbox_min_age` in the config file, else 5s]. Files named on the command line are always taken' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l from -d 'Where the files come from: `sftp` downloads new files from Engage\'s SFTP server (`[sftp]` in the config file) into the inbox first, `local` imports the inbox (or the PATHs) only [default: sftp when `[sftp] host` is set and no PATH is given, else local]' -r -f -a "sftp\t'Engage\'s SFTP server (`[sftp]` in the config file), via the inbox'
local\t'The inbox folder or the PATHs given'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l trust-host-key -d 'Trust the SFTP server\'s host key with this fingerprint (SHA256:…, as printed when an unknown or changed key is refused), after checking it with the Voyado team; it is recorded in `[sftp] known_hosts` (a changed key replaces the old entry)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l deadline -d 'Stop after this long (e.g. 10m): no connection, retry or download starts later; files downloaded completely are still imported, the rest is left for the next run (exit 75)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l sftp-password -d 'The SFTP password [default: read from `[sftp] password_file` in the config file]. Prefer the variable or the file: a command line is visible to other users of the machine' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l sftp-passphrase -d 'The passphrase of `[sftp] private_key_file`, when it is encrypted' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l create-replica -d 'Create the replica (and its till store) when there is none at the --db path; without it (or `create_replica = true` in the config file) the command refuses (exit 78) and creates nothing, so a run in the wrong folder leaves no stray replica. `init` and `full` create without it; till commands and push-local never create one' -r -f -a "true\t''
false\t''"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l keep-going -d 'Go on with the next file after a bad one; the exit code still reports the failure'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l dry-run -d 'Run the real logic and report per item what would happen, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l wait -d 'Wait for another engage-sync run to release the lock instead of exiting with 75'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand delta" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l from-xml -d 'Build from a complete contact-export file set: files, or folders whose *.xml files are used (paths holding no export file are refused, exit 64). Without it, the build comes from the API: every contact created or updated since --since is listed with the changes feed, then fetched one by one (rate-limited)' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l since -d 'API build: list contacts created or updated since this date [default: 2000-01-01]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l mode -d 'Mode of the new replica [default: the current replica\'s, else `mode` in the config file, else full]. `full` is the one way to change a replica\'s mode' -r -f -a "keys\t'contactId, contactType and the lookup keys only: enough to tag a purchase'
full\t'Whole contact objects, every field in `attributes`'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l deadline -d 'Stop after this long (e.g. 10m); a later run resumes the build' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l engage-base-url -d 'Engage\'s API base URL, e.g. https://TENANT.voyado.com [default: `[engage] base_url` in the config file]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l engage-api-key -d 'Engage\'s API key [default: read from the file named by `[engage] api_key_file` in the config file]. Prefer the variable or the key file: a command line is visible to other users of the machine. Never printed' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l restart -d 'Discard an unfinished build and start over'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l dry-run -d 'Run the real logic and report per item what would happen, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l wait -d 'Wait for another engage-sync run to release the lock instead of exiting with 75'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand full" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l since -d 'Read changes from this time instead of the stored cursor (e.g. 2026-11-01, "2026-11-01 08:00:00", 2026-11-01T08:00:00+01:00; no offset means UTC)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l deadline -d 'Stop after this long (e.g. 10m): no request starts later; the cursor stays where it was' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l engage-base-url -d 'Engage\'s API base URL, e.g. https://TENANT.voyado.com [default: `[engage] base_url` in the config file]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l engage-api-key -d 'Engage\'s API key [default: read from the file named by `[engage] api_key_file` in the config file]. Prefer the variable or the key file: a command line is visible to other users of the machine. Never printed' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l create-replica -d 'Create the replica (and its till store) when there is none at the --db path; without it (or `create_replica = true` in the config file) the command refuses (exit 78) and creates nothing, so a run in the wrong folder leaves no stray replica. `init` and `full` create without it; till commands and push-local never create one' -r -f -a "true\t''
false\t''"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l dry-run -d 'Run the real logic and report per item what would happen, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l wait -d 'Wait for another engage-sync run to release the lock instead of exiting with 75'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand changes" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l mobile -d 'Mobile phone, in any common format (national numbers use the default country)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l email -d 'E-mail address (case-insensitive)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l member-number -d 'Member number' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l contact-id -d 'Engage contact id (GUID, any case)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l external-id -d 'External id' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l ssn -d 'Personal identity number (personnummer)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l local-key -d 'Local integration key of a contact registered at the till (e.g. L0600-000123)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand lookup" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l max-age -d 'With --check: the replica is stale when its last successful sync is older than this (e.g. 30m, 2h, 1d)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l max-pending-age -d 'With --check: also exit 75 when an outbox item (contact or receipt) has waited longer than this to be delivered (e.g. 1h)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l check -d 'Exit 75 with a one-line reason when the replica is stale, 74 when the newest run of a job left a warning (a file not archived); exit 0 with one line when fine'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand status" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l older-than -d 'Purge what is older than this (e.g. 30d, 12h, 2w)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l create-replica -d 'Create the replica (and its till store) when there is none at the --db path; without it (or `create_replica = true` in the config file) the command refuses (exit 78) and creates nothing, so a run in the wrong folder leaves no stray replica. `init` and `full` create without it; till commands and push-local never create one' -r -f -a "true\t''
false\t''"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l dry-run -d 'Run the real logic and report per item what would happen, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l wait -d 'Wait for another engage-sync run to release the lock instead of exiting with 75'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand purge" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -f -a "add" -d 'Register a new contact at the till (offline) and queue it for Engage'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -f -a "update" -d 'Change a contact at the till; only the changed fields are queued for Engage'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and not __fish_seen_subcommand_from add update help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l email -d 'E-mail address [email]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l mobile -d 'Mobile number, national (default country) or international form [mobilePhone]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l contact-type -d 'Contact type [contactType] [default: Member]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l first-name -d 'First name [firstName]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l last-name -d 'Last name [lastName]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l member-number -d 'Member number [memberNumber]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l external-id -d 'External id [externalId]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l ssn -d 'Personal identity number [socialSecurityNumber]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l field -d 'Any other Engage attribute, e.g. --field city=Umeå (repeatable)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l from -d 'Read the fields from a JSON document: a file, or - for stdin' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l dry-run -d 'Validate and report what would be registered, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l contact-id -d 'Select the contact by its Engage contact id' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l local-key -d 'Select the contact by its local key (e.g. L0600-000123)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l email -d 'Select the contact by e-mail address' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l mobile -d 'Select the contact by mobile phone' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l new-email -d 'New e-mail address [email]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l new-mobile -d 'New mobile phone [mobilePhone]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l first-name -d 'First name [firstName]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l last-name -d 'Last name [lastName]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l member-number -d 'Member number [memberNumber]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l external-id -d 'External id [externalId]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l ssn -d 'Personal identity number [socialSecurityNumber]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l field -d 'Any other Engage attribute, e.g. --field city=Umeå (repeatable)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l from -d 'Read the fields from a JSON document: a file, or - for stdin' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l dry-run -d 'Validate and report what would change, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "add" -d 'Register a new contact at the till (offline) and queue it for Engage'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change a contact at the till; only the changed fields are queued for Engage'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -f -a "add" -d 'Buffer finalized receipts (Engage receipt JSON) for push-local'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and not __fish_seen_subcommand_from add help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -l dry-run -d 'Validate and report what would be buffered, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from help" -f -a "add" -d 'Buffer finalized receipts (Engage receipt JSON) for push-local'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand receipt; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l deadline -d 'Stop after this long (e.g. 10m): no request starts later; what is left stays queued' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l engage-base-url -d 'Engage\'s API base URL, e.g. https://TENANT.voyado.com [default: `[engage] base_url` in the config file]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l engage-api-key -d 'Engage\'s API key [default: read from the file named by `[engage] api_key_file` in the config file]. Prefer the variable or the key file: a command line is visible to other users of the machine. Never printed' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l retry-rejected -d 'Queue items Engage rejected earlier once more (after fixing them)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l dry-run -d 'Run the real logic and report per item what would happen, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l wait -d 'Wait for another engage-sync run to release the lock instead of exiting with 75'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand push-local" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l to -d 'The folder to write the files to (created if missing, mode 0750); the stores read it' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l name -d 'The name part of the file names (letters, digits and `-`)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l per-file -d 'Contacts per file, at most 10000 (Engage\'s own limit)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l db -d 'The replica database file [default: `db` in the config file, else engage-sync.db]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l config -d 'The TOML config file [default: the first that exists of ./engage-sync.toml, $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml), /etc/engage-sync/engage-sync.toml; else none]' -r -F
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l log-format -d 'Format of log lines on stderr [default: `log_format` in the config file, else text]' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, for log shippers'"
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l log-filter -d 'A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid one is ignored)' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l default-country -d 'Country for phone numbers written without a country code: any ISO 3166 code with a numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the config file, else SE]' -r
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l snapshot -d 'Publish the whole replica (for `full --from-xml` on a store) instead of the changes'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l dry-run -d 'Run the real logic and report per item what would happen, but write nothing'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l wait -d 'Wait for another engage-sync run to release the lock instead of exiting with 75'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -l json -d 'Print the result as JSON on stdout (logs stay on stderr)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -s q -l quiet -d 'Less output: -q logs warnings only, and a job (init, delta, changes, full, purge, push-local) that succeeded prints no summary (--json still prints); -qq logs errors only. Also hides progress'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand publish" -s V -l version -d 'Print version'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "init" -d 'Create the replica and its till store, or migrate them to this version\'s schema'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "delta" -d 'Import Engage contact-export XML files into the replica'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "full" -d 'Build a complete replica (from a full export or the API) and swap it in atomically'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "changes" -d 'Pull contact changes from Engage\'s API since the stored cursor and apply them'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "lookup" -d 'Find a contact in the replica by one key and print the key to tag a purchase with'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "status" -d 'Show replica freshness, counts, recent runs, failures, quarantined files, gaps, the outboxes (depth per kind and state, the oldest undelivered item, rejected items with Engage\'s reason) and a `full` build in progress or left behind (age, size)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "purge" -d 'Delete local personal data older than an age (GDPR)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "contact" -d 'Register or change a contact at the till, queued for push-local'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "receipt" -d 'Buffer finalized purchases (Engage receipt JSON) for push-local'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "push-local" -d 'Push queued contacts (bulk write), then buffered receipts, to Engage'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "publish" -d 'On a hub: write the replica\'s changes as export files that stores import with `delta`'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and not __fish_seen_subcommand_from init delta full changes lookup status purge contact receipt push-local publish help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "add" -d 'Register a new contact at the till (offline) and queue it for Engage'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "update" -d 'Change a contact at the till; only the changed fields are queued for Engage'
complete -c engage-sync -n "__fish_engage_sync_using_subcommand help; and __fish_seen_subcommand_from receipt" -f -a "add" -d 'Buffer finalized receipts (Engage receipt JSON) for push-local'
