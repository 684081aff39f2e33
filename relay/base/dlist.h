/* Intrusive doubly linked lists: each element has prev and next pointers
 * of its own type, and the list is a pointer to its first element (NULL
 * when empty). Macros, since the element types differ. */
#ifndef KOLLEGA_RELAY_DLIST_H
#define KOLLEGA_RELAY_DLIST_H

/* Put node (not in any list) first in the list head (an lvalue). */
#define KL_DLIST_PUSH(head, node)                                              \
    do {                                                                       \
        (node)->prev = NULL;                                                   \
        (node)->next = (head);                                                 \
        if (head)                                                              \
            (head)->prev = (node);                                             \
        (head) = (node);                                                       \
    } while (0)

/* Take node out of the list head (an lvalue) it is in. */
#define KL_DLIST_UNLINK(head, node)                                            \
    do {                                                                       \
        if ((node)->prev)                                                      \
            (node)->prev->next = (node)->next;                                 \
        else                                                                   \
            (head) = (node)->next;                                             \
        if ((node)->next)                                                      \
            (node)->next->prev = (node)->prev;                                 \
    } while (0)

#endif
