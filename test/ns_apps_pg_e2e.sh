#!/bin/bash
# ns_apps_pg_e2e: test/ns_apps_e2e.sh on a real PostgreSQL server (Debian postgresql, started
# by test/pg.bash in the test's temp dir): callbacks byte for byte, downlink by callback,
# retries, REST, MQTT, and the callback queue in PostgreSQL surviving a restart. Licence: MIT.
NS_APPS_PG=1 exec bash "$(dirname "$0")/ns_apps_e2e.sh"
