#!/usr/bin/perl
# A zombie flood for gwshim's stress tests (perl-base only: a perl fork is several times
# faster than a Python one).
#   flood.pl DIR N [N...]
# For each N in turn: an intermediate process starts N children that exit at once and
# exits itself without waiting for them, so all N reach the reaper as orphans (most already
# zombies). Then writes N to DIR/flood-I and waits (at most 60 s) for DIR/go-I. Exits 0.
use strict;
use warnings;
use POSIX ();

my ($dir, @counts) = @ARGV;
my $i = 0;
for my $count (@counts) {
    my $middle = fork // die "fork: $!";
    if ($middle == 0) {
        for (1 .. $count) {
            my $pid = fork;
            if (!defined $pid) {
                POSIX::_exit(2);
            }
            POSIX::_exit(0) if $pid == 0;
        }
        POSIX::_exit(0);
    }
    waitpid($middle, 0);
    my $status = $? >> 8;
    open(my $f, '>', "$dir/flood-$i.tmp") or die "flood-$i: $!";
    print $f "$count $status\n";
    close($f);
    rename("$dir/flood-$i.tmp", "$dir/flood-$i") or die "rename: $!";
    my $deadline = time + 60;
    select(undef, undef, undef, 0.01) while !-e "$dir/go-$i" && time < $deadline;
    $i++;
}
POSIX::_exit(0);
