# wfbench codegen of workflow 'orders' (graph f47aac265408).
# Generated from the flow graph; do not edit. Each use_step(...) is a durable step,
# each use_closure(...) a Python closure of the graph registered as a durable step.
# next_input(r) passes an entry's output on; an entry that did not succeed
# (suspended, bailed, canceled) ends the run there.


async def workflow_orders(run, input_data):
    "Workflow 'orders': 6 entries."
    use_step = run.use_step
    use_closure = run.use_closure
    next_input = run.next_input
    prev = input_data

    # entry 1: then step 'validate_order'
    prev = next_input(await use_step('validate_order')(prev))

    # entry 2: branch over step 'express', step 'standard'
    chosen = await asyncio.gather(
        use_closure('orders/entry2/branch1/condition')(prev),
        use_closure('orders/entry2/branch2/condition')(prev),
    )
    calls = []
    if chosen[0]:
        calls.append(use_step('express')(prev))
    if chosen[1]:
        calls.append(use_step('standard')(prev))
    r = run.block(['express', 'standard'], await run.gather(*calls))
    prev = next_input(r)

    # entry 3: map 'mapping_1' with a function, lifted as 'orders/entry3/map'
    prev = next_input(await use_step('mapping_1')(prev))

    # entry 4: foreach step 'price_line', concurrency 3
    items = run.foreach_items('price_line', prev)
    pool = asyncio.Semaphore(3)

    async def foreach_entry4(index, item):
        async with pool:
            return await use_step('price_line').item(index, item, pool)

    r = run.foreach_end('price_line', prev, await run.gather(
        *[foreach_entry4(index, item) for index, item in enumerate(items)],
    ))
    prev = next_input(r)

    # entry 5: map 'mapping_2' with a mapping object (1 key)
    prev = next_input(await run.mapping('mapping_2', prev, {
        'boxes': 2,
    }))

    # entry 6: then nested workflow 'packing'
    r = await use_step('packing')(prev)

    return run.end(r)


async def workflow_packing(run, input_data):
    "Workflow 'packing': 2 entries."
    use_step = run.use_step
    use_closure = run.use_closure
    next_input = run.next_input
    prev = input_data

    # entry 1: map 'mapping_1' with a mapping object (2 keys)
    prev = next_input(await run.mapping('mapping_1', prev, {
        'packed': 0,
        'boxes': run.from_init('boxes'),
    }))

    # entry 2: dountil step 'pack'
    iteration = 0
    while True:
        iteration += 1
        r = await use_step('pack')(prev, iteration=iteration)
        prev = next_input(r)
        if await use_closure('packing/entry2/loop/condition')(prev, iteration=iteration):
            break

    return run.end(r)
