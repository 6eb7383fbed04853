"""Rights and private lines belong to identities, not names, over the real listener:
a muted guest stays muted when it leaves and joins again on its connection, and a new
guest under a departed member's nick reads none of the direct messages (nor SYSTEM's
lines) addressed to that member, while the member itself still reads its own."""

from __future__ import annotations

import trio

from tests.helpers.chat import chat, core_of
from tests.helpers.daemon import RunningDaemon, login
from tests.helpers.sources import admin_client


async def test_a_muted_guest_stays_muted_when_it_leaves_and_joins_again(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(30):
        async with chat(daemon, "carl") as carl:
            await carl.join("#lobby")  # carl founds it: its operator
            async with chat(daemon, "dora") as dora:
                await dora.join("#lobby")
                await carl.send(0, dest="lobby", message="/mute dora")
                await dora.expect(0, notice="mute", target="dora")
                for _ in range(2):
                    await dora.send(5, channel="#lobby")
                    await dora.expect(5, user="dora", channel="lobby")
                    await dora.join("#lobby")
                    await dora.send(0, dest="lobby", message="I am back")
                    assert "muted" in await dora.error()
                await carl.send(0, dest="lobby", message="/unmute dora")
                await dora.expect(0, notice="unmute", target="dora")
                await dora.send(0, dest="lobby", message="thanks")
                await carl.expect(0, user="dora", message="thanks")
            # a mute is of that connection: a new guest under the name is not muted
            await carl.send(0, dest="lobby", message="/mute dora")  # no dora here now
            assert "no user" in await carl.error()
            async with chat(daemon, "dora") as again:
                await again.join("#lobby")
                await again.send(0, dest="lobby", message="hello")
                await carl.expect(0, user="dora", message="hello")
            session = core_of(daemon).find("lobby")
            assert session is not None
            assert not session.muted  # a guest's mute ends with its connection


async def test_direct_messages_are_replayed_to_identities_not_nicks(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            token = await login(http)
        async with chat(daemon, "owner") as owner, chat(daemon, "admin", token) as admin:
            await owner.join("#lobby")  # keeps the channel (and its history) alive
            await admin.join("#lobby")
            async with chat(daemon, "carl") as carl:
                await carl.join("#lobby")
                await owner.send(0, dest="lobby", to="carl", message="carl: the code is 1234")
                await carl.expect(0, user="owner", to="carl")
                await carl.send(0, dest="lobby", to="owner", message="my secret reply")
                await owner.expect(0, user="carl", to="owner")
                await owner.send(0, dest="lobby", to="admin", message="for the admin")
                await admin.expect(0, user="owner", to="admin")
                lobby = core_of(daemon).find("lobby")
                member = lobby.member_named("carl") if lobby is not None else None
                assert member is not None
                async with admin_client(daemon) as api:
                    response = await api.put(
                        f"/session/lobby/{member.id}", json={"message": "carl, your reset link"}
                    )
                    assert response.status_code == 200, response.text
                await carl.expect(0, user="SYSTEM", message="carl, your reset link")
                await owner.send(0, dest="lobby", message="a line for everyone")
                await carl.expect(0, user="owner", message="a line for everyone")
                # carl leaves and joins again: it reads its own direct messages
                await carl.send(5, channel="#lobby")
                await carl.expect(5, user="carl")
                carl.seen.clear()
                await carl.join("#lobby")
                await carl.expect(0, history=True, message="carl: the code is 1234")
            # carl is gone; a new guest taking the nick reads only the public lines
            async with chat(daemon, "carl") as impostor:
                await impostor.join("#lobby")
                await impostor.send(6, channel="lobby")  # a round trip: replay is done
                await impostor.expect(6, channel="lobby")
                replayed = [f["message"] for f in impostor.seen if f.get("history")]
                assert replayed == ["a line for everyone"], replayed
            # the account reads its own direct message again (same identity, new connection)
            await admin.send(5, channel="#lobby")
            await admin.expect(5, user="admin")
            admin.seen.clear()
            await admin.join("#lobby")
            await admin.expect(0, history=True, message="for the admin")
