#define _GNU_SOURCE
#include "cskiff.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int sk_exec_path(const char *file, char *const argv[], char *const envp[], const char *path) {
    if (!file || !*file) {
        errno = ENOENT;
        return -1;
    }
    if (strchr(file, '/')) {
        execve(file, argv, envp);
        return -1;
    }
    if (!path || !*path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int best = ENOENT;
    size_t flen = strlen(file);
    const char *p = path;
    char buf[PATH_MAX];
    for (;;) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        if (dlen + 1 + flen + 1 <= sizeof buf) {
            if (dlen == 0) {
                memcpy(buf, file, flen + 1);
            } else {
                memcpy(buf, p, dlen);
                buf[dlen] = '/';
                memcpy(buf + dlen + 1, file, flen + 1);
            }
            execve(buf, argv, envp);
            switch (errno) {
            case ENOENT:
            case ENOTDIR:
            case ENAMETOOLONG:
            case ELOOP:
                break;
            case EACCES:
                best = EACCES;
                break;
            default:
                return -1;  // ENOEXEC, E2BIG, ETXTBSY…: report that one
            }
        }
        if (!end) break;
        p = end + 1;
    }
    errno = best;
    return -1;
}

int sk_set_cmdline(const char *title) {
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f) return -1;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    /* p+2 is field 3; fields 48..51 are arg_start, arg_end, env_start, env_end. */
    unsigned long v[52] = {0};
    int field = 3;
    for (char *tok = strtok(p + 2, " "); tok && field <= 51; tok = strtok(NULL, " "), field++)
        v[field] = strtoul(tok, NULL, 10);
    if (field <= 51 || v[49] <= v[48]) {
        errno = EINVAL;
        return -1;
    }
    char *arg = (char *)v[48];
    size_t alen = v[49] - v[48];
    memset(arg, 0, alen);
    strncpy(arg, title, alen - 1);
    if (v[51] > v[50]) memset((char *)v[50], 0, v[51] - v[50]);
    return 0;
}

static volatile pid_t child_pid;

int sk_init_run(const char *file, char *const argv[], char *const envp[], const char *path, int errfd) {
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        setpgid(0, 0);  // own group, so a terminal's foreground group is the workload's
        sk_exec_path(file, argv, envp, path);
        int e = errno;
        char msg[5];
        msg[0] = 'X';
        memcpy(msg + 1, &e, sizeof e);
        ssize_t n = write(errfd, msg, sizeof msg);
        (void)n;
        _exit(e == ENOENT ? 127 : 126);
    }
    close(errfd);
    child_pid = pid;
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    int child_status = 0;
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0) continue;
        if (sig != SIGCHLD) {
            // Forward to the workload; SIGKILL/SIGSTOP cannot be caught and never arrive here.
            kill(pid, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t r = waitpid(-1, &status, WNOHANG);
            if (r <= 0) break;
            if (r == pid) {
                child_status = status;
                // Reap what is left, then leave: the kernel kills the rest of the namespace.
                while (waitpid(-1, NULL, WNOHANG) > 0) {
                }
                return child_status;
            }
        }
    }
}
