#ifndef RELAY_SPAWN_H
#define RELAY_SPAWN_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (NULL: this process's environment) in `directory` (NULL: this
/// one's). Each of `stdin_fd`, `stdout_fd`, `stderr_fd` is dup2'ed onto 0, 1 or 2; -1 opens /dev/null
/// there, -2 leaves the parent's. Every other descriptor is closed in the child, and its signal mask
/// and dispositions are reset. Returns 0 and sets `*pid`, or an errno value.
int relay_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory,
                int stdin_fd, int stdout_fd, int stderr_fd);

#endif
