"""``-x/--extract`` and ``--extract-last``: the fenced code blocks of a reply (several, none,
nested, four backticks, tildes, indented in a list), printed alone."""

from __future__ import annotations

import json

import pytest

from interncli.structured import code_blocks, extract_block, find_json
from tests.apiserver import Completion, Stream, stream_chunks
from tests.conftest import SENTINEL
from tests.fakeio import run_with, terminal_io

SHARED_SERVER = True

SEVERAL = "First:\n```python\nprint(1)\n```\nThen:\n```sh\nls -l\n```\nDone."


def test_several_blocks_first_and_last():
    assert code_blocks(SEVERAL) == [("python", "print(1)\n"), ("sh", "ls -l\n")]
    assert extract_block(SEVERAL) == "print(1)\n"
    assert extract_block(SEVERAL, last=True) == "ls -l\n"


@pytest.mark.parametrize("text", ["no code here", "", "inline `code` and ``more``", "``\nx\n``"])
def test_no_block(text):
    assert extract_block(text) is None


def test_a_block_showing_markdown_with_code_in_it_is_one_block():
    text = "```markdown\n# Use\n```python\nimport x\n```\nThat is all.\n```\nAfter."
    assert code_blocks(text) == [("markdown", "# Use\n```python\nimport x\n```\nThat is all.\n")]


def test_a_four_backtick_fence_holds_three_backtick_lines_as_text():
    text = "````\n```\nnot a fence here\n```\n````\n```js\nx()\n```"
    assert code_blocks(text) == [("", "```\nnot a fence here\n```\n"), ("js", "x()\n")]


def test_a_longer_closing_fence_closes_and_a_shorter_one_does_not():
    assert code_blocks("```\na\n``````\nb") == [("", "a\n")]
    assert code_blocks("````\na\n```\nb\n````") == [("", "a\n```\nb\n")]


def test_tilde_fences_and_backticks_inside_them():
    text = "~~~ruby\nputs `date`\n```\n~~~\n"
    assert code_blocks(text) == [("ruby", "puts `date`\n```\n")]


def test_a_block_in_a_list_item_loses_its_indentation():
    text = "1. Install:\n   ```sh\n   pip install x\n     --user\n   ```\n"
    assert code_blocks(text) == [("sh", "pip install x\n  --user\n")]


def test_a_block_left_open_runs_to_the_end():
    assert code_blocks("Here:\n```py\nx = 1\ny = 2") == [("py", "x = 1\ny = 2\n")]


def test_a_backtick_line_with_a_backtick_in_its_info_is_not_a_fence():
    assert code_blocks("``` a`b\nx\n```py\ny\n```") == [("py", "y\n")]


def test_an_empty_block():
    assert code_blocks("```\n```") == [("", "")]


@pytest.mark.parametrize("text", ["here: ```sh\nls -la\n```", "Done.\n```", "Done.\n```py\n\n  \n"])
def test_a_fence_left_open_with_nothing_after_it_is_no_block(text):
    # The opening fence written in mid-line does not count; the closing one alone opened an
    # empty block, which printed nothing, with no warning, exit 0.
    assert code_blocks(text) == [] and extract_block(text) is None


def test_a_reply_whose_only_fence_stands_last_is_printed_whole_with_a_warning(cli, api):
    api.add(Completion("here: ```sh\nls -la\n```"))
    result = cli("chat", "create", "-x", "-g", "user", "hi")
    assert result.exit_code == 0 and result.stdout == "here: ```sh\nls -la\n```\n"
    assert "no fenced code block" in result.stderr


def test_json_found_in_a_fence_among_prose():
    text = "Here is the record:\n```python\nnot json\n```\n```json\n{\"a\": 1}\n```\n"
    assert find_json(text) == ({"a": 1}, None)


# ------------------------------------------------------------------------ the command


def test_extract_prints_the_first_block(cli, api):
    api.add(Completion(SEVERAL))
    result = cli("chat", "create", "-g", "user", "code please", "-x")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "print(1)\n" and result.stderr == ""


def test_extract_last_prints_the_last_block(cli, api):
    api.add(Completion(SEVERAL))
    result = cli("chat", "create", "-g", "user", "code please", "--extract-last")
    assert result.exit_code == 0 and result.stdout == "ls -l\n"


def test_no_block_prints_the_whole_reply_and_warns(cli, api):
    api.add(Completion("Just use ls."))
    result = cli("chat", "create", "-g", "user", "code please", "--extract")
    assert result.exit_code == 0
    assert result.stdout == "Just use ls.\n"
    assert "warning: no fenced code block in the reply: printing it whole" in result.stderr


def test_extract_a_streamed_reply(cli, api):
    api.add(Stream(stream_chunks(["Sure:\n``", "`sh\necho hi\n", "```\n"])))
    result = cli("chat", "create", "-g", "user", "code please", "-x", "--stream")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo hi\n"


def test_extract_each_of_several_choices(cli, api):
    api.add(Completion(["```\na\n```", "b, no block"]))
    result = cli("chat", "create", "-g", "user", "code", "-x", "-n", "2")
    assert result.exit_code == 0
    assert result.stdout == "===== Chat Completion 0 =====\na\n===== Chat Completion 1 =====\nb, no block\n"
    assert "no fenced code block in the reply 1" in result.stderr


def test_extract_keeps_the_whole_reply_in_the_conversation(cli, api, tmp_path):
    store = tmp_path / "talk.json"
    api.add(Completion(SEVERAL))
    assert cli("chat", "create", "-g", "user", "code", "-x", "--conversation", str(store)).exit_code == 0
    assert json.loads(store.read_text())[-1] == {"role": "assistant", "content": SEVERAL}


def test_extract_with_json_is_refused(cli, api):
    result = cli("chat", "create", "-g", "user", "code", "-x", "--json")
    assert result.exit_code == 2 and "cannot be used together" in result.stderr
    assert api.calls() == []


def test_extracted_code_is_the_bytes_in_a_pipe(cli, api):
    api.add(Completion("```\nprintf '\x1b[1mbold'\n```"))
    result = cli("chat", "create", "-g", "user", "code", "-x")
    assert result.stdout == "printf '\x1b[1mbold'\n"  # a pipe gets what the model sent


def test_extracted_code_is_escaped_on_a_terminal(api):
    api.add(Completion("```\nprintf '\x1b]0;owned\x07'\n```"))
    result = run_with(terminal_io(), ["-b", api.base_url, "-k", SENTINEL, "chat", "create", "-g", "user", "x", "-x"])
    assert result.exit_code == 0
    assert result.stdout == "printf '\\x1b]0;owned\\x07'\n"


def test_extract_with_usage(cli, api):
    api.add(Completion(SEVERAL))
    result = cli("chat", "create", "-g", "user", "code", "-x", "-u")
    assert result.stdout == "print(1)\n" and "interncli: usage:" in result.stderr
