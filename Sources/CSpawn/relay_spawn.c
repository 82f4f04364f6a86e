// posix_spawn with the GNU extensions Swift's Glibc module does not import (closefrom, chdir).
// Foundation's Process.run() on Linux over-reads /proc/self/fd entries while it lists them to close
// them; in a test process with a thousand descriptors open it crashed about one CI run in five
// (swift-corelibs-foundation #5472, not in the 6.3.1 toolchain). The kernel closes them here instead.
#define _GNU_SOURCE
#include "relay_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

extern char **environ;

static int redirect(posix_spawn_file_actions_t *actions, int fd, int target) {
    if (fd == -2) return 0;
    if (fd < 0) return posix_spawn_file_actions_addopen(actions, target, "/dev/null", O_RDWR, 0);
    return posix_spawn_file_actions_adddup2(actions, fd, target);
}

int relay_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory,
                int stdin_fd, int stdout_fd, int stderr_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int error = posix_spawn_file_actions_init(&actions);
    if (error) return error;
    error = posix_spawnattr_init(&attributes);
    if (error) {
        posix_spawn_file_actions_destroy(&actions);
        return error;
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!error) error = redirect(&actions, stdin_fd, 0);
    if (!error) error = redirect(&actions, stdout_fd, 1);
    if (!error) error = redirect(&actions, stderr_fd, 2);
    if (!error && directory) error = posix_spawn_file_actions_addchdir_np(&actions, directory);
    if (!error) error = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    // The parent may block or ignore signals (a service waiting for SIGTERM does); the child starts clean.
    if (!error) error = posix_spawnattr_setsigmask(&attributes, &none);
    if (!error) error = posix_spawnattr_setsigdefault(&attributes, &all);
    if (!error) error = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!error) error = posix_spawn(pid, path, &actions, &attributes, argv, envp ? envp : environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return error;
}
