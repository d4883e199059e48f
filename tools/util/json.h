/* Small JSON output helper shared by the tools. */
#ifndef MOBA_TOOLS_JSON_H
#define MOBA_TOOLS_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal (quotes included); escapes quotes,
 * backslashes and control characters, since backend detail and device texts
 * can carry paths and loader messages. */
void json_write_string(FILE *f, const char *s);

#endif
