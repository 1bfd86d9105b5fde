//! `-Y`: the text protocol's authentication. Before login every line is refused; the replies of
//! that phase share one slot in memcached, so a reply still unsent when the next line arrives
//! is replaced — the cases pause between lines where each reply should be seen.

use crate::case::Case;
use crate::common::ascii_auth_file;

fn auth(case: Case) -> Case {
    let args: &'static [&'static str] = Box::leak(Box::new(["-Y", ascii_auth_file()]));
    case.args(args)
}

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    vec![
        auth(Case::new(
            "ascii auth/a burst shows its last reply",
            "get k\r\nversion\r\nmg k v\r\nset x 0 0 12\r\nalice secret\r\n",
        )),
        auth(
            Case::named("ascii auth/each refusal")
                .send("get k\r\n")
                .pause(200)
                .send("mg k v\r\n")
                .pause(200)
                .send("set x 0 0 11\r\nalice wrong\r\n")
                .pause(200)
                .send("set x 0 0 5\r\nalice\r\n")
                .pause(200)
                .send("set x 0 0 3\r\nabcde")
                .pause(200)
                .send("set x 0 0 y\r\nalice secret\r\n")
                .pause(200)
                .send("\r\n")
                .pause(200)
                .send("add x 0 0 12\r\nalice secret\r\n")
                .pause(200)
                .send("set x y z 8\r\nbob pw:x\r\n"),
        ),
        auth(Case::new(
            "ascii auth/noreply is ignored and later commands work",
            "set x 0 0 12 noreply\r\nalice secret\r\nset k 0 0 1\r\nv\r\nget k\r\n",
        )),
        auth(Case::new(
            "ascii auth/extra tokens in the token are ignored",
            "set x 0 0 14\r\nalice secret x\r\nversion\r\n",
        )),
        auth(
            Case::named("ascii auth/the password must match whole")
                .send("set x 0 0 6\r\nbob pw\r\n")
                .pause(200)
                .send("set x 0 0 11\r\nalice secre\r\n")
                .pause(200)
                .send("set x 0 0 12\r\nalice secret\r\n"),
        ),
    ]
}
