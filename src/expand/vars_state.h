/* vars_state.h: setters for expansion variables whose values only exist
 * for a moment of delivery ($inode while appendfile names a file). */
#ifndef POSTERN_VARS_STATE_H
#define POSTERN_VARS_STATE_H

void vars_set_inode(unsigned long inode);

#endif
